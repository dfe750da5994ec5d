"""gtn-nas maths: search space, networks, data, training, GTN. Never imports ray."""

__version__ = "0.1.0"
