"""python -m noiseda.cli: the same as noiseda."""

from noiseda.cli import main

raise SystemExit(main())
