# The runners of the mlci pools as GitLab sees them. With runner
# authentication tokens, GitLab (not config.toml) holds a runner's tags and
# its maximum job timeout, so they are declared here, one runner per pool.
# The pools come from pools.json, which `mlci runners render` writes from
# mlci.yml: change mlci.yml and render again rather than editing it.

locals {
  spec  = jsondecode(file("${path.module}/pools.json"))
  pools = { for pool in local.spec.pools : pool.name => pool }
}

resource "gitlab_user_runner" "pool" {
  for_each = local.pools

  runner_type = var.runner_type
  project_id  = var.runner_type == "project_type" ? var.project_id : null
  group_id    = var.runner_type == "group_type" ? var.group_id : null

  description     = each.value.description
  tag_list        = toset(each.value.tags)
  untagged        = false
  maximum_timeout = each.value.maximum_timeout
  access_level    = var.access_level
  paused          = false
}
