"""The Kubernetes platform on top of a site: stack config and manifests derived from the Plan.

Pure: nothing here imports Pulumi, touches the network or writes files. The Pulumi program
(stacks/platform) and the runner (provision/execute/pulumi_stack.py) consume these values.
"""
