"""Tool approval on the server's side (docs/approval.md): the per-agent policy, the
per-user store, pending approvals as the APIs show them, and checking decisions."""

from server.approval.pending import Pending, find_pending, from_interrupts, view, waiting_text
from server.approval.policy import approval_deps
from server.approval.store import ApprovalStore, approval_store

__all__ = ["ApprovalStore", "Pending", "approval_deps", "approval_store", "find_pending",
           "from_interrupts", "view", "waiting_text"]
