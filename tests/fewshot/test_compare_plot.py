"""accuracy_vs_shots.png: every strategy tells apart from the others, a readable legend, ticks at the shots run."""

import colorsys

from matplotlib.colors import to_hex, to_rgb

from fewshot_audio.fewshot.compare_results import draw_results


def rows(strategies, shots=(1, 2, 5, 10, 20)):
    return [{"strategy": s, "shots": k, "accuracy": 0.2 + 0.05 * i + 0.01 * k, "ci95": 0.02, "protocol": "low-data",
             "ways": 5, "metric": ""} for i, s in enumerate(strategies) for k in shots]


def test_each_strategy_has_its_own_colour_and_marker_and_ticks_are_the_shots():
    names = ["prototypical/conv4", "prototypical/mfcc", "transfer/musicnn", "mfcc-svm", "mfcc-1nn", "finetune/conv4",
             "regularized/conv4", "prototypical/aisfx"]
    fig = draw_results(rows(names))
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in names]
    assert [line.get_label() for line in lines] == names
    colours = [to_hex(line.get_color()) for line in lines]
    assert len(set(colours)) == len(names), colours  # no two strategies share a colour
    # tab20 gave neighbouring strategies a dark and a light shade of one hue (two blues): neighbours differ in hue
    hues = [colorsys.rgb_to_hsv(*to_rgb(c)) for c in colours]
    for (h1, s1, _), (h2, s2, _) in zip(hues, hues[1:]):
        if min(s1, s2) > 0.15:
            assert min(abs(h1 - h2), 1 - abs(h1 - h2)) > 20 / 360, colours
    assert len({line.get_marker() for line in lines}) == len(names)
    assert min(t.get_fontsize() for t in ax.get_legend().get_texts()) >= 9
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "5", "10", "20"]
    assert list(ax.xaxis.get_minorticklocs()) == []  # no stray 2x10^0 minor ticks on the log axis
