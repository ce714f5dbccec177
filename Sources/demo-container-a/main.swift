print("demo-container-a")
