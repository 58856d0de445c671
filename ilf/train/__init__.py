"""Training loops, thin over TRL: supervised fine-tuning now; reward models and preference
optimisation sit beside it."""
