"""The ground floor: facts and helpers every layer shares (model contract, image codec and value mapping,
message stamps). Imports nothing else of srdb_ros."""
