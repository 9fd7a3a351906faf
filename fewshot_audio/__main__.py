import sys

from fewshot_audio.cli import main

sys.exit(main())
