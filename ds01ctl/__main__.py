from ds01ctl.cli import main

main()
