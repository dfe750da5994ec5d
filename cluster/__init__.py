"""gtn-nas cluster side: everything that touches Ray, plus the CLI.

Importing the package sets the environment Ray reads when it is itself imported (an embedded Ray bound
to loopback, no usage stats), so no module here can import Ray before it is set.
"""

from cluster.raysetup import ray_env

ray_env()
