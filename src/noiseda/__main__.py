from noiseda.cli import main

raise SystemExit(main())
