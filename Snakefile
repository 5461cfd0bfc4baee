# The one entry point: `snakemake --cores 2` (the embedded default), `snakemake --cores 8 --profile slurm` (the
# paper on a Slurm cluster, README), `snakemake --cores 8 --configfile config/paper.yaml`. The workflow itself --
# rules, schemas, report captions -- lives in workflow/ (workflow/Snakefile).
include: "workflow/Snakefile"


# Rules of an included file never become the default target; this one is workflow/Snakefile's `all`.
rule default:
    input:
        rules.all.input,
    default_target: True
