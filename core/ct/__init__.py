"""Certificate Transparency: SCTs and the logs' policy (pure), submission (the edge)."""
