"""KFP components: one thin typed wrapper per stage. The logic lives in `kfops.<stage>`."""
