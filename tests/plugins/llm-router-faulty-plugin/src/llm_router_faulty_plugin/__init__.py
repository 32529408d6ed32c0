"""Components that raise when used: faulty_score, faulty_check, faulty_models."""
