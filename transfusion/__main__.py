from transfusion.bench.cli import main

raise SystemExit(main())
