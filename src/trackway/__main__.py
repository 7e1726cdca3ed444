from trackway.cli import main

main()
