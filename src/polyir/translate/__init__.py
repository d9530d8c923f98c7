"""Machine translation of retrieval data with M2M-100 / NLLB-200 (one code path): the translated training sets
and low-resource BEIR collections of the paper's protocol, resumable through a content-addressed cache and
checked for quality."""
