from polyir.cli import main

main()
