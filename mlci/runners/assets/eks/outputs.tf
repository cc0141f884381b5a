output "node_groups" {
  description = "Each GPU node group with its pool, capacity type and autoscaling group."
  value = {
    for name, group in aws_eks_node_group.gpu : name => {
      arn                = group.arn
      pool               = local.node_groups[name].pool
      capacity_type      = group.capacity_type
      autoscaling_groups = [for asg in group.resources[0].autoscaling_groups : asg.name]
    }
  }
}

output "monthly_floor_cost" {
  description = "What the pools cost per month while idle (min nodes around the clock), from mlci.yml's price table."
  value       = local.spec.monthly_floor_cost
}
