"""The numpydoc sections of the estimators' parameters, shared by their docstrings."""

COMMON = """\
    method : str, default "ddvi"
        ddvi | aevb | aevb-iaf | aaeb | h-aevb | pis.
    prior : str or SamplesPrior, default "pinwheel"
        gaussian | mixture | pinwheel | swiss_roll | square; ``"samples:FILE.npy"`` (or ``.npz``)
        for a :class:`~ddvi.priors.SamplesPrior`, a kernel density around the file's samples
        (read at fit time; a saved model holds the samples); or a SamplesPrior object, e.g.
        ``Prior.from_samples(array, labels)``.
    likelihood : str, default "bernoulli"
        bernoulli (data in [0, 1]) | gaussian (a learned variance per feature) | gaussian-iso.
    latent_dim : int, default 2
        Dimension of z (the prior's).
    epochs : int, default 10
        Passes over the training rows.
    batch_size : int, default 128
        Rows per step.
    lr : float or None, default None
        Adam learning rate; None: the paper's (1e-4, AAEB 2e-4).
    hidden : tuple of int or None, default None
        Hidden widths of the encoder and decoder MLPs; None: (1000, 1000).
    sleep : str, default "none"
        DDVI's sleep term: none (the Markovian ELBO alone) | latent (the unconditional chain
        learns the prior's shape, appendix B) | full (wake-sleep, section 3.4).
    timesteps : int, default 20
        T, the number of steps of DDVI's (and PIS's) chain.
    schedule : str, default "linear"
        Noise schedule of the chain: linear | geometric | cosine.
    beta_reg : float or None, default None
        Weight of the KL-like term of the wake loss; None: the paper's (DDVI 0.003, AEVB
        family 0.01, with warm-up) times the number of features, i.e. per example. 1.0 is the
        plain ELBO.
    beta_diff : float, default 1.0
        Weight of the sleep term (``sleep`` latent or full).
    sleep_steps : int, default 1
        Fantasy batches per step for ``sleep="full"``.
    fantasy : str, default "sample"
        Fantasy x for the full sleep: sample (x ~ p(x|z)) | mean (the decoder's mean).
    context_dim : int or None, default None
        Width of the encoder's context c(x) that conditions the chain (or flow); None: 10
        (0 for ``sleep="latent"``, whose chain is unconditional).
    denoiser_hidden : int, default 128
        Width of the denoiser's layers.
    denoiser_layers : int, default 5
        Number of layers of DDVI's denoiser.
    learn_variance : bool, default True
        Learn the variances of the steps of DDVI's reverse chain (False: fixed at the
        schedule's).
    guidance : {"auto", "prior", "joint", "none"}, default "auto"
        What DDVI's denoiser sees at each step besides u_t and the context: the prior's score
        grad log p(z) at the chain's current point ("prior", one prior gradient per step), also
        the likelihood's ("joint", a decoder pass per step), or nothing ("none", the paper's
        chain). "auto": "prior" unless the prior is Gaussian (whose score adds nothing). The
        prior's score lets the amortised chain follow a structured prior's shape
        (benchmarks/RESULTS.md, "Guidance").
    prior_weight : float or None, default None
        Weight of log p(z) in the AEVB family's loss; None: the paper's 5. DDVI uses 1.
    warmup_steps : int, default 0
        Optional pre-training of DDVI's denoiser on prior samples (algorithm 1, line 1).
    dropout : float, default 0.0
        Dropout in the encoder and decoder MLPs.
    binarize : bool, default True
        Threshold [0, 1] data at 0.5 for the Bernoulli likelihood (so the ELBO bounds a proper
        likelihood of the data).
    standardize : bool, default False
        Scale each feature to mean 0, std 1 over the training rows (stored with the model and
        applied again by ``transform`` and every other method); needs a Gaussian likelihood.
    seed : int, default 0
        Seeds initialisation, batches and every sample: the same seed gives the same model.
    verbose : bool, default True
        Progress bar during fit.
    run_dir : str or None, default None
        Folder for checkpoints (written atomically) and ``history.csv``; ``fit(resume=True)``
        continues from its checkpoint.
    checkpoint_every : int, default 1
        Epochs between checkpoints.
    arch : str, default "mlp"
        mlp | conv (the paper's CIFAR-10 convolutional encoder and decoder).
    beta_start, beta_end : float or None, default None
        The schedule's first and last beta_t; None: the defaults of
        :func:`ddvi.diffusion.make_betas` (every beta_t <= 0.5).
    threads : int or "auto", default "auto"
        CPU threads a fit computes with: auto uses the cores other processes leave free (a
        busy neighbour does not stall training); torch's own setting is restored after fit.
    device : str, default "auto"
        Where a fit computes: auto (CUDA if available, else MPS, else the CPU) | cpu | cuda |
        cuda:N | mps. The data go there once per fit; ``transform`` and the other methods take
        and return host arrays; :meth:`load` puts a saved model on any device.
    compile : bool, default False
        Train DDVI's reverse chain compiled by ``torch.compile`` (see
        :meth:`~ddvi.posteriors.DiffusionPosterior.compile_chain`): 15-25 % faster steps after a
        compilation of a minute or two, so worth it for long fits; the model is the same.
"""

SEMI_SUPERVISED = """\
    alpha : float, default 1000.0
        Weight of the classifier q(l|x)'s loss on labelled rows.
    labeled_batch_size : int, default 32
        Labelled rows added to every batch, so a few labels still steer
        every step.
    classifier_hidden : tuple of int, default (1000,)
        Hidden widths of the classifier q(l|x).
"""

CLUSTERING = """\
    n_clusters : int, default 8
        The number of clusters K (as scikit-learn's KMeans, 8 by default).
    cluster_model : str, default "mixture"
        mixture (learned means of a Gaussian-mixture prior) | variable (a latent
        cluster variable with a Dirichlet prior).
"""
