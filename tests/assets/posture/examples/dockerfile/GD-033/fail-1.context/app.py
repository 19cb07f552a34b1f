print("hello from the build context")
