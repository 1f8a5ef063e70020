from margin.engine.cli import main

raise SystemExit(main())
