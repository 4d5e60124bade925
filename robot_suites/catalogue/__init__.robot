*** Settings ***
Documentation     The functional catalogue: every VoIP case as a real call through the
...               platform under test, judged on four witnesses (customer, carrier,
...               platform CDR, wire). Run it with `voipqa run robot_suites/catalogue`.
Library           qa.robot.VoipQA
