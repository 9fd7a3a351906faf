"""The thesis's own studies: the random-weight architecture probe (:mod:`.probe`)."""
