from stormer.cli import main

main()
