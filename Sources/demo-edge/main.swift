print("demo-edge")
