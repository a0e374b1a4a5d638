print("importing broken_mod")
raise ValueError("broken on purpose")
