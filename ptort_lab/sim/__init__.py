"""The simulator: machine model and costs, the discrete-event engine, numpy execution of the IR, traces and stats."""
