from polyir.cli.app import main

main()
