"""Stories: the scored story (`model`), input parsed into stories or named rejections
(`parsing`), and the archive that keeps every newer version (`archive`).
"""
