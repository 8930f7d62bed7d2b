"""What makes mug's labels safe to serve without ground truth.

selection chooses the label noise and cross-fitting per dataset (from evidence, held-out
statistics of y_M and the representations); cross_fit runs stage 1 out of fold; ensemble
averages whole runs over seeds; gate keeps, shrinks or drops each modality's correction;
uncertainty gives each label a calibrated interval; report turns the decisions into lines
for people. Reads labelgen.stages, never the other way round.
"""
