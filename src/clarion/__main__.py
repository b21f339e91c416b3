from clarion.cli import main

# Guarded: a worker process started by "spawn" (the import's row checkers) imports the main
# module again, and must not run the command a second time.
if __name__ == "__main__":
    main()
