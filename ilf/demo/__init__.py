"""``ilf demo``: the offline controlled study that shows ILF working in minutes on a laptop."""
