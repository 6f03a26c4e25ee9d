"""The yurt command line."""
