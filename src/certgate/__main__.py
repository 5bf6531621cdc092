"""``python -m certgate``: the CLI; how ``certgate serve --workers N`` starts its workers."""

from certgate.cli.main import main

main()
