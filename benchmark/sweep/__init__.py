"""The sweep as Hydra runs it: progress while its jobs run, its report when they are done."""
