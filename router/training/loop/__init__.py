"""The learning loop's training side: outcome rows from the usage log, the retrain, the gate run."""
