"""The GitOps loop: follow a config repo's branch, apply what the Site's auto-apply policy
allows, hold the rest for approval, and leave every user a status they can read.

Pure decisions (`policy`, `held`'s ids, `userstatus`'s documents, `preflight`'s checks) are
separate from the shell that fetches, plans, applies and writes (`gitsource`, `loop`).
"""
