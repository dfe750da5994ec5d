"""gtn-nas maths: search space, networks, data, training, GTN. Never imports ray."""
