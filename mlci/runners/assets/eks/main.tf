# GPU node groups of the mlci runner pools: EKS managed node groups on the
# EKS-optimized accelerated AMI, scaled by the cluster autoscaler from zero.
# The pools come from pools.json, which `mlci runners render` writes from
# mlci.yml: change mlci.yml and render again rather than editing it.

locals {
  spec        = jsondecode(file("${path.module}/pools.json"))
  node_groups = { for group in local.spec.node_groups : group.name => group }

  # The cluster autoscaler reads these autoscaling-group tags to scale a node
  # group up from zero (labels, taints, GPUs of a node it has not seen yet)
  # and to remove an idle node after the pool's idle timeout.
  autoscaler_tags = merge([
    for name, group in local.node_groups : {
      for key, value in group.autoscaler_tags : "${name} ${key}" => {
        node_group = name
        key        = key
        value      = value
      }
    }
  ]...)
}

resource "aws_eks_node_group" "gpu" {
  for_each = local.node_groups

  cluster_name    = var.cluster_name
  node_group_name = each.key
  node_role_arn   = var.node_role_arn
  subnet_ids      = var.subnet_ids
  version         = var.kubernetes_version

  ami_type       = each.value.ami_type
  capacity_type  = each.value.capacity_type
  instance_types = [each.value.instance_type]
  disk_size      = each.value.disk_size
  labels         = each.value.labels

  scaling_config {
    min_size     = each.value.min_size
    max_size     = each.value.max_size
    desired_size = each.value.min_size
  }

  update_config {
    max_unavailable = 1
  }

  dynamic "taint" {
    for_each = each.value.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = merge(var.tags, each.value.tags)

  lifecycle {
    # The cluster autoscaler moves the size between min and max.
    ignore_changes = [scaling_config[0].desired_size]
  }
}

resource "aws_autoscaling_group_tag" "autoscaler" {
  for_each = local.autoscaler_tags

  autoscaling_group_name = aws_eks_node_group.gpu[each.value.node_group].resources[0].autoscaling_groups[0].name

  tag {
    key                 = each.value.key
    value               = each.value.value
    propagate_at_launch = false
  }
}
