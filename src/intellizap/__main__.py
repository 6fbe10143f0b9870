from intellizap.cli import main

main()
