output "runner_ids" {
  description = "GitLab runner ID of each pool."
  value       = { for name, runner in gitlab_user_runner.pool : name => runner.id }
}

output "runner_tokens" {
  description = "Runner authentication token of each pool: into the pool's Kubernetes Secret, or the MLCI_RUNNER_TOKEN_<POOL> variable of the Ansible run."
  value       = { for name, runner in gitlab_user_runner.pool : name => runner.token }
  sensitive   = true
}
