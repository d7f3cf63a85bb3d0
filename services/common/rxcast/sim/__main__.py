from rxcast.sim.cli import main

raise SystemExit(main())
