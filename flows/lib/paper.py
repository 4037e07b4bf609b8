"""The published numbers of Chu et al. (2018) that our results are shown beside."""

# Table 2 of Chu et al. (2018): accuracy, precision, recall, F1 on their IMDb test quotes, keyed by
# the params.yaml preset that names the same row.
PAPER_TABLE2 = {
    "baseline_char": (0.286, 0.538, 0.286, 0.339),
    "baseline3": (0.287, 0.552, 0.288, 0.349),
    "attn_char": (0.630, 0.586, 0.628, 0.600),
    "attn3": (0.630, 0.590, 0.630, 0.603),
    "attn3_tropetrip": (0.615, 0.566, 0.615, 0.583),
    "attn3_tropetrip500": (0.644, 0.601, 0.642, 0.615),
    "attn3_ksmem": (0.678, 0.648, 0.676, 0.657),
    "attn3_rwmem": (0.635, 0.598, 0.635, 0.611),
    "attn3_tropetrip_ksmem": (0.663, 0.628, 0.662, 0.639),
    "attn3_tropetrip500_ksmem": (0.654, 0.618, 0.652, 0.629),
    "attn3_tropetrip_rwmem": (0.649, 0.602, 0.648, 0.617),
    "attn3_tropetrip500_rwmem": (0.644, 0.608, 0.644, 0.619),
    "attn3_tropetrip500_ksmem_ndialog16": (0.740, 0.707, 0.741, 0.718),
    "attn3_tropetrip500_ksmem_ndialog32": (0.750, 0.750, 0.750, 0.750),
    "attn3_tropetrip_ksmem_ndialog16": (0.740, 0.722, 0.741, 0.728),
    "attn3_tropetrip_ksmem_ndialog32": (0.731, 0.712, 0.731, 0.718),
}
# Table 3 of Chu et al. (2018), purity in %: Persona Regression and Dirichlet Persona (Bamman et
# al. 2014) and the AMN, on the paper's IMDb characters.
PAPER_TABLE3 = {
    "PR": {"25": 42.9, "50": 36.5, "100": 30.3},
    "DP": {"25": 39.63, "50": 31.0, "100": 24.4},
    "AMN": {"25": 48.4, "50": 48.1, "100": 45.2},
}
