"""Stress, load and soak (issue 7, DESIGN §8): profiles, SIPp as the traffic engine driven
live, Locust as the distributed runner, verdicts with thresholds, CDR reconciliation under
load, and a report. The only ``import locust`` is in the glue modules (``locustfile``);
everything else here is plain Python that asyncio code, Robot and pytest may import.
"""
