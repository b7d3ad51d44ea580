from transfusion.cli.main import main

raise SystemExit(main())
