variable "runner_type" {
  description = "Scope of the runners: project_type, group_type or instance_type."
  type        = string
  default     = "project_type"

  validation {
    condition     = contains(["project_type", "group_type", "instance_type"], var.runner_type)
    error_message = "runner_type must be project_type, group_type or instance_type."
  }
}

variable "project_id" {
  description = "Numeric ID of the project the runners belong to (runner_type project_type)."
  type        = number
  default     = null
}

variable "group_id" {
  description = "Numeric ID of the group the runners belong to (runner_type group_type)."
  type        = number
  default     = null
}

variable "access_level" {
  description = "not_protected, or ref_protected to run only jobs of protected branches and tags."
  type        = string
  default     = "not_protected"

  validation {
    condition     = contains(["not_protected", "ref_protected"], var.access_level)
    error_message = "access_level must be not_protected or ref_protected."
  }
}
