"""fetch-docs: pull the documents a Skop scraping job found into a verified folder."""

__version__ = "0.1.0"
