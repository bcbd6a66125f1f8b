"""Every signature hanko makes goes through here: a batched pool of PKCS#11 worker
processes (pool), the throwaway-key splice for bulk X.509 signing (splice), a
cryptography key adapter for one-at-a-time signing (hsm_key), and a software signer
with the same interface for unit tests (software)."""
