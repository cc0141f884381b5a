variable "cluster_name" {
  description = "Name of the EKS cluster the GPU node groups join."
  type        = string
}

variable "node_role_arn" {
  description = "IAM role of the nodes (AmazonEKSWorkerNodePolicy, AmazonEKS_CNI_Policy, AmazonEC2ContainerRegistryReadOnly)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the node groups; spread them over zones so spot capacity has more pools to come from."
  type        = list(string)
}

variable "kubernetes_version" {
  description = "Kubernetes version of the nodes; null follows the cluster's version."
  type        = string
  default     = null
}

variable "tags" {
  description = "AWS tags added to every node group."
  type        = map(string)
  default     = {}
}
