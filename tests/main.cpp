// doctest's main, and a listener that lists the test cases skipped by a decorator (with the
// reason their description gives) after the summary, so a skip is never silent.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <iostream>
#include <string>
#include <vector>

namespace {

struct skip_listener : doctest::IReporter {
    explicit skip_listener(const doctest::ContextOptions&) {}

    void test_case_skipped(const doctest::TestCaseData& test) override {
        if (test.m_skip)
            skipped_.push_back(std::string(test.m_name) + " (" + (test.m_description ? test.m_description : "no reason given") + ")");
    }
    void test_run_end(const doctest::TestRunStats&) override {
        if (skipped_.empty()) return;
        std::cout << "skipped test cases: " << skipped_.size() << "\n";
        for (const auto& line : skipped_) std::cout << "  skipped: " << line << "\n";
    }

    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}

private:
    std::vector<std::string> skipped_;
};

} // namespace

REGISTER_LISTENER("skipped", 1, skip_listener);
