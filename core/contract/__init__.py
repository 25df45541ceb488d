"""What a plugin implements and may rely on: hooks, VisionModel, StimulusSet/Dataset/Responses,
Metric/Score, plugin metadata, and checkpoint names and series on disk."""
