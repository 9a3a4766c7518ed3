from datasets.cli import entry

entry()
